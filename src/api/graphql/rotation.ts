/** Key rotation. */
import { builder } from './builder.ts';
import { KEY_ID, KeyIdInput, emptyKmsMutation, kmsField } from './common.ts';

const EnableKeyRotationInput = builder.inputType('EnableKeyRotationInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), rotationPeriodInDays: t.int({ description: '90-2560, default 365.' }) }),
});
emptyKmsMutation('EnableKeyRotation', 'EnableKeyRotation: automatic rotation every rotationPeriodInDays.', EnableKeyRotationInput);
emptyKmsMutation('DisableKeyRotation', 'DisableKeyRotation.', KeyIdInput('DisableKeyRotationInput'));

kmsField('RotateKeyOnDemand', {
  type: builder.objectRef<{ keyId: string }>('RotateKeyOnDemandResponse').implement({ fields: (f) => ({ keyId: f.exposeString('keyId') }) }),
  description: 'RotateKeyOnDemand: new key material now; at most 25 per key. Older material still decrypts.',
  input: KeyIdInput('RotateKeyOnDemandInput'),
});

kmsField('GetKeyRotationStatus', {
  type: builder
    .objectRef<{ keyId: string; keyRotationEnabled: boolean; rotationPeriodInDays: number | null; nextRotationDate: Date | null; onDemandRotationStartDate: Date | null }>('GetKeyRotationStatusResponse')
    .implement({
      fields: (f) => ({
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        keyRotationEnabled: f.exposeBoolean('keyRotationEnabled'),
        rotationPeriodInDays: f.exposeInt('rotationPeriodInDays', { nullable: true }),
        nextRotationDate: f.expose('nextRotationDate', { type: 'DateTime', nullable: true }),
        onDemandRotationStartDate: f.expose('onDemandRotationStartDate', { type: 'DateTime', nullable: true }),
      }),
    }),
  description: 'GetKeyRotationStatus.',
  input: KeyIdInput('GetKeyRotationStatusInput'),
});

const RotationType = builder.enumType('RotationType', { values: ['AUTOMATIC', 'ON_DEMAND'] as const });
const RotationsListEntry = builder
  .objectRef<{ keyId: string; keyMaterialId: string; rotationDate: Date; rotationType: 'AUTOMATIC' | 'ON_DEMAND' }>('RotationsListEntry')
  .implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId'),
      keyMaterialId: f.exposeString('keyMaterialId'),
      rotationDate: f.expose('rotationDate', { type: 'DateTime' }),
      rotationType: f.field({ type: RotationType, resolve: (r) => r.rotationType }),
    }),
  });

const ListKeyRotationsInput = builder.inputType('ListKeyRotationsInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), limit: t.int(), marker: t.string() }),
});
kmsField('ListKeyRotations', {
  type: builder.objectRef<{ rotations: { keyId: string; keyMaterialId: string; rotationDate: Date; rotationType: 'AUTOMATIC' | 'ON_DEMAND' }[]; nextMarker: string | null; truncated: boolean }>('ListKeyRotationsResponse').implement({
    fields: (f) => ({
      rotations: f.expose('rotations', { type: [RotationsListEntry] }),
      nextMarker: f.exposeString('nextMarker', { nullable: true }),
      truncated: f.exposeBoolean('truncated'),
    }),
  }),
  description: 'ListKeyRotations: completed rotations, oldest first.',
  input: ListKeyRotationsInput,
});
