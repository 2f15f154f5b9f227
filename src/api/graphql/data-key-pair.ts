/** GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: asymmetric data keys under a symmetric KMS key. */
import type { GenerateDataKeyPairResult } from '../../service/data-key-service.ts';
import { builder, type BuilderTypes } from './builder.ts';
import { KEY_ID, kmsField } from './common.ts';
import { RecipientInfoInput } from './key-agreement.ts';

const DATA_KEY_PAIR_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'SM2',
  'ECC_NIST_EDWARDS25519',
] as const;
type DataKeyPairSpecValue = (typeof DATA_KEY_PAIR_SPECS)[number];

const DataKeyPairSpec = builder.enumType('DataKeyPairSpec', {
  description: "AWS's DataKeyPairSpec. SM2 exists only in AWS's China Regions and is refused (UnsupportedOperationException).",
  values: DATA_KEY_PAIR_SPECS,
});

const inputFields = (t: PothosSchemaTypes.InputFieldBuilder<BuilderTypes, 'InputObject'>) => ({
  keyId: t.string({ ...KEY_ID, description: 'A symmetric encryption KMS key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT): key id, key ARN, alias name or alias ARN.' }),
  keyPairSpec: t.field({ type: DataKeyPairSpec, required: true }),
  encryptionContext: t.field({ type: 'EncryptionContext', description: 'Bound to the encrypted private key: Decrypt needs the same context.' }),
  grantTokens: t.stringList(),
  dryRun: t.boolean(),
});

const GenerateDataKeyPairInput = builder.inputType('GenerateDataKeyPairInput', {
  fields: (t) => ({ ...inputFields(t), recipient: t.field({ type: RecipientInfoInput }) }),
});

const GenerateDataKeyPairWithoutPlaintextInput = builder.inputType('GenerateDataKeyPairWithoutPlaintextInput', {
  fields: (t) => inputFields(t),
});

kmsField('GenerateDataKeyPair', {
  type: builder.objectRef<GenerateDataKeyPairResult>('GenerateDataKeyPairResponse').implement({
    fields: (f) => ({
      privateKeyCiphertextBlob: f.expose('privateKeyCiphertextBlob', {
        type: 'Base64',
        description: 'The private key encrypted under the KMS key; its ciphertext id is the dataKeyId in the audit log.',
      }),
      privateKeyPlaintext: f.expose('privateKeyPlaintext', { type: 'Base64', description: 'The private key, PKCS#8 DER.' }),
      publicKey: f.expose('publicKey', { type: 'Base64', description: 'The public key, DER SubjectPublicKeyInfo.' }),
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      keyPairSpec: f.field({ type: DataKeyPairSpec, resolve: (r) => r.keyPairSpec as DataKeyPairSpecValue }),
      keyMaterialId: f.exposeString('keyMaterialId'),
    }),
  }),
  description:
    'GenerateDataKeyPair: a new key pair whose private key (PKCS#8 DER) is returned in plaintext and encrypted ' +
    'under a symmetric KMS key, bound to the encryption context, as GenerateDataKey encrypts a data key.',
  input: GenerateDataKeyPairInput,
});

kmsField('GenerateDataKeyPairWithoutPlaintext', {
  type: builder.objectRef<Omit<GenerateDataKeyPairResult, 'privateKeyPlaintext'>>('GenerateDataKeyPairWithoutPlaintextResponse').implement({
    fields: (f) => ({
      privateKeyCiphertextBlob: f.expose('privateKeyCiphertextBlob', {
        type: 'Base64',
        description: 'The private key encrypted under the KMS key; Decrypt it when it is needed.',
      }),
      publicKey: f.expose('publicKey', { type: 'Base64', description: 'The public key, DER SubjectPublicKeyInfo.' }),
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      keyPairSpec: f.field({ type: DataKeyPairSpec, resolve: (r) => r.keyPairSpec as DataKeyPairSpecValue }),
      keyMaterialId: f.exposeString('keyMaterialId'),
    }),
  }),
  description: 'GenerateDataKeyPairWithoutPlaintext: the encrypted private key and the public key only.',
  input: GenerateDataKeyPairWithoutPlaintextInput,
});
