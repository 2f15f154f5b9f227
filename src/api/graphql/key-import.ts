/** Imported key material (BYOK): GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial. */
import { IMPORT_TYPES, WRAPPING_ALGORITHMS, WRAPPING_KEY_SPECS } from '../../domain/key.ts';
import { builder } from './builder.ts';
import { ExpirationModelType, KEY_ID, kmsField } from './common.ts';

const AlgorithmSpec = builder.enumType('AlgorithmSpec', {
  values: WRAPPING_ALGORITHMS,
  description: 'Wrapping algorithms (RSAES_PKCS1_V1_5 is refused, as AWS refuses it).',
});
const WrappingKeySpec = builder.enumType('WrappingKeySpec', { values: WRAPPING_KEY_SPECS });
const ImportType = builder.enumType('ImportType', { values: IMPORT_TYPES });

kmsField('GetParametersForImport', {
  type: builder.objectRef<{ keyId: string; importToken: Buffer; publicKey: Buffer; parametersValidTo: Date }>('GetParametersForImportResponse').implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      importToken: f.expose('importToken', { type: 'Base64' }),
      publicKey: f.expose('publicKey', { type: 'Base64', description: 'The wrapping public key, DER SubjectPublicKeyInfo.' }),
      parametersValidTo: f.expose('parametersValidTo', { type: 'DateTime', description: '24 hours from the request.' }),
    }),
  }),
  description: 'GetParametersForImport: a fresh RSA wrapping key and an import token for a key of origin EXTERNAL, valid 24 hours.',
  input: builder.inputType('GetParametersForImportInput', {
    fields: (t) => ({
      keyId: t.string(KEY_ID),
      wrappingAlgorithm: t.field({ type: AlgorithmSpec, required: true }),
      wrappingKeySpec: t.field({ type: WrappingKeySpec, required: true }),
    }),
  }),
});

const KeyMaterialResponse = (name: string) =>
  builder.objectRef<{ keyId: string; keyMaterialId: string }>(name).implement({
    fields: (f) => ({ keyId: f.exposeString('keyId', { description: 'The key ARN.' }), keyMaterialId: f.exposeString('keyMaterialId') }),
  });

kmsField('ImportKeyMaterial', {
  type: KeyMaterialResponse('ImportKeyMaterialResponse'),
  description:
    "ImportKeyMaterial: key material wrapped with GetParametersForImport's public key. A re-import accepts only the same material; " +
    'NEW_KEY_MATERIAL into a symmetric key that has material prepares an on-demand rotation.',
  input: builder.inputType('ImportKeyMaterialInput', {
    fields: (t) => ({
      keyId: t.string(KEY_ID),
      importToken: t.field({ type: 'Base64', required: true }),
      encryptedKeyMaterial: t.field({ type: 'Base64', required: true }),
      validTo: t.field({ type: 'DateTime', description: 'Required with KEY_MATERIAL_EXPIRES; at most 365 days ahead.' }),
      expirationModel: t.field({ type: ExpirationModelType }),
      importType: t.field({ type: ImportType }),
      keyMaterialDescription: t.string(),
      keyMaterialId: t.string({ description: 'With EXISTING_KEY_MATERIAL: the version being imported again.' }),
    }),
  }),
});

kmsField('DeleteImportedKeyMaterial', {
  type: KeyMaterialResponse('DeleteImportedKeyMaterialResponse'),
  description:
    'DeleteImportedKeyMaterial: destroys imported material (default: the current version); the key is PendingImport until the same material is imported again.',
  input: builder.inputType('DeleteImportedKeyMaterialInput', { fields: (t) => ({ keyId: t.string(KEY_ID), keyMaterialId: t.string() }) }),
});
