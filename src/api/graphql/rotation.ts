/** Key rotation. */
import { builder } from './builder.ts';
import { INCLUDE_KEY_MATERIAL, type RotationListEntry } from '../../service/rotation-service.ts';
import { ExpirationModelType, KEY_ID, KeyIdInput, emptyKmsMutation, kmsField } from './common.ts';

const EnableKeyRotationInput = builder.inputType('EnableKeyRotationInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), rotationPeriodInDays: t.int({ description: '90-2560, default 365.' }) }),
});
emptyKmsMutation('EnableKeyRotation', 'EnableKeyRotation: automatic rotation every rotationPeriodInDays.', EnableKeyRotationInput);
emptyKmsMutation('DisableKeyRotation', 'DisableKeyRotation.', KeyIdInput('DisableKeyRotationInput'));

kmsField('RotateKeyOnDemand', {
  type: builder
    .objectRef<{ keyId: string }>('RotateKeyOnDemandResponse')
    .implement({ fields: (f) => ({ keyId: f.exposeString('keyId', { description: 'The key ARN.' }) }) }),
  description: 'RotateKeyOnDemand: new key material now; at most 25 per key. Older material still decrypts.',
  input: KeyIdInput('RotateKeyOnDemandInput'),
});

kmsField('GetKeyRotationStatus', {
  type: builder
    .objectRef<{
      keyId: string;
      keyRotationEnabled: boolean;
      rotationPeriodInDays: number | null;
      nextRotationDate: Date | null;
    }>('GetKeyRotationStatusResponse')
    .implement({
      fields: (f) => ({
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        keyRotationEnabled: f.exposeBoolean('keyRotationEnabled'),
        rotationPeriodInDays: f.exposeInt('rotationPeriodInDays', { nullable: true }),
        nextRotationDate: f.expose('nextRotationDate', { type: 'DateTime', nullable: true }),
      }),
    }),
  description: 'GetKeyRotationStatus.',
  input: KeyIdInput('GetKeyRotationStatusInput'),
});

const RotationType = builder.enumType('RotationType', { values: ['AUTOMATIC', 'ON_DEMAND'] as const });
const ImportState = builder.enumType('ImportState', { values: ['IMPORTED', 'PENDING_IMPORT'] as const });
const KeyMaterialState = builder.enumType('KeyMaterialState', { values: ['CURRENT', 'NON_CURRENT', 'PENDING_ROTATION'] as const });
const IncludeKeyMaterial = builder.enumType('IncludeKeyMaterial', { values: INCLUDE_KEY_MATERIAL });
const RotationsListEntry = builder.objectRef<RotationListEntry>('RotationsListEntry').implement({
  fields: (f) => ({
    keyId: f.exposeString('keyId'),
    keyMaterialId: f.exposeString('keyMaterialId'),
    keyMaterialDescription: f.string({ nullable: true, resolve: (r) => r.keyMaterialDescription ?? null }),
    importState: f.field({ type: ImportState, nullable: true, description: 'Imported material only.', resolve: (r) => r.importState ?? null }),
    keyMaterialState: f.field({ type: KeyMaterialState, resolve: (r) => r.keyMaterialState }),
    expirationModel: f.field({ type: ExpirationModelType, nullable: true, resolve: (r) => r.expirationModel ?? null }),
    validTo: f.field({ type: 'DateTime', nullable: true, resolve: (r) => r.validTo ?? null }),
    rotationDate: f.field({
      type: 'DateTime',
      nullable: true,
      description: 'Null for material that no rotation made current (ALL_KEY_MATERIAL).',
      resolve: (r) => r.rotationDate ?? null,
    }),
    rotationType: f.field({ type: RotationType, nullable: true, resolve: (r) => r.rotationType ?? null }),
  }),
});

const ListKeyRotationsInput = builder.inputType('ListKeyRotationsInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), includeKeyMaterial: t.field({ type: IncludeKeyMaterial }), limit: t.int(), marker: t.string() }),
});
kmsField('ListKeyRotations', {
  type: builder.objectRef<{ rotations: RotationListEntry[]; nextMarker: string | null; truncated: boolean }>('ListKeyRotationsResponse').implement({
    fields: (f) => ({
      rotations: f.expose('rotations', { type: [RotationsListEntry] }),
      nextMarker: f.exposeString('nextMarker', { nullable: true }),
      truncated: f.exposeBoolean('truncated'),
    }),
  }),
  description: 'ListKeyRotations: completed rotations, oldest first; with includeKeyMaterial ALL_KEY_MATERIAL, every key material version.',
  input: ListKeyRotationsInput,
});
