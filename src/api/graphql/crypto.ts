/** Symmetric cryptographic operations. */
import { builder } from './builder.ts';
import { EncryptionAlgorithmSpec, KEY_ID, kmsField } from './common.ts';

const EncryptionAlgorithmInput = EncryptionAlgorithmSpec;
type EncryptionAlgorithm = 'SYMMETRIC_DEFAULT' | 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256' | 'SM2PKE';
const DataKeySpec = builder.enumType('DataKeySpec', { values: ['AES_256', 'AES_128'] as const });

const EncryptInput = builder.inputType('EncryptInput', {
  fields: (t) => ({
    keyId: t.string(KEY_ID),
    plaintext: t.field({ type: 'Base64', required: true, description: '1-4096 bytes.' }),
    encryptionContext: t.field({ type: 'EncryptionContext' }),
    grantTokens: t.stringList(),
    encryptionAlgorithm: t.field({ type: EncryptionAlgorithmInput }),
    dryRun: t.boolean(),
  }),
});

kmsField('Encrypt', {
  type: builder.objectRef<{ ciphertextBlob: Buffer; keyId: string; encryptionAlgorithm: string }>('EncryptResponse').implement({
    fields: (f) => ({
      ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      encryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: (r) => r.encryptionAlgorithm as EncryptionAlgorithm }),
    }),
  }),
  description:
    'Encrypt: up to 4096 bytes under a symmetric KMS key, bound to the encryption context; or, ' +
    "with encryptionAlgorithm RSAES_OAEP_SHA_1/256, under an RSA ENCRYPT_DECRYPT key (AWS's plaintext limits, no encryption context).",
  input: EncryptInput,
});

const DecryptInput = builder.inputType('DecryptInput', {
  fields: (t) => ({
    ciphertextBlob: t.field({ type: 'Base64', required: true }),
    keyId: t.string({
      description:
        'Optional for symmetric ciphertext (when given it must name the key in the blob); ' +
        'required for a ciphertext made under an RSA key, with encryptionAlgorithm.',
    }),
    encryptionContext: t.field({ type: 'EncryptionContext' }),
    grantTokens: t.stringList(),
    encryptionAlgorithm: t.field({ type: EncryptionAlgorithmInput }),
    dryRun: t.boolean(),
  }),
});

kmsField('Decrypt', {
  type: builder.objectRef<{ plaintext: Buffer; keyId: string; encryptionAlgorithm: string; keyMaterialId?: string }>('DecryptResponse').implement({
    fields: (f) => ({
      plaintext: f.expose('plaintext', { type: 'Base64' }),
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      encryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: (r) => r.encryptionAlgorithm as EncryptionAlgorithm }),
      keyMaterialId: f.exposeString('keyMaterialId', { nullable: true, description: 'Null for an asymmetric key, as AWS omits it.' }),
    }),
  }),
  description: 'Decrypt: a mutation because it is a recorded action. The encryption context must be the one used to encrypt.',
  input: DecryptInput,
});

const ReEncryptInput = builder.inputType('ReEncryptInput', {
  fields: (t) => ({
    ciphertextBlob: t.field({ type: 'Base64', required: true }),
    sourceEncryptionContext: t.field({ type: 'EncryptionContext' }),
    sourceKeyId: t.string(),
    destinationKeyId: t.string({ required: true }),
    destinationEncryptionContext: t.field({ type: 'EncryptionContext' }),
    sourceEncryptionAlgorithm: t.field({ type: EncryptionAlgorithmInput }),
    destinationEncryptionAlgorithm: t.field({ type: EncryptionAlgorithmInput }),
    grantTokens: t.stringList(),
    dryRun: t.boolean(),
  }),
});

kmsField('ReEncrypt', {
  type: builder
    .objectRef<{
      ciphertextBlob: Buffer;
      sourceKeyId: string;
      keyId: string;
      sourceEncryptionAlgorithm: string;
      destinationEncryptionAlgorithm: string;
      sourceKeyMaterialId?: string;
      destinationKeyMaterialId?: string;
    }>('ReEncryptResponse')
    .implement({
      fields: (f) => ({
        ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
        sourceKeyId: f.exposeString('sourceKeyId'),
        keyId: f.exposeString('keyId', { description: 'The destination key ARN.' }),
        sourceEncryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: (r) => r.sourceEncryptionAlgorithm as EncryptionAlgorithm }),
        destinationEncryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: (r) => r.destinationEncryptionAlgorithm as EncryptionAlgorithm }),
        // Null on an asymmetric side, as AWS omits them.
        sourceKeyMaterialId: f.exposeString('sourceKeyMaterialId', { nullable: true }),
        destinationKeyMaterialId: f.exposeString('destinationKeyMaterialId', { nullable: true }),
      }),
    }),
  description:
    'ReEncrypt: decrypt and encrypt again under another key or context, inside the service. From an RSA key give sourceKeyId ' +
    'and sourceEncryptionAlgorithm; to one, destinationEncryptionAlgorithm (no encryption context on an RSA side).',
  input: ReEncryptInput,
});

const GenerateDataKeyInput = (name: string) =>
  builder.inputType(name, {
    fields: (t) => ({
      keyId: t.string(KEY_ID),
      encryptionContext: t.field({ type: 'EncryptionContext' }),
      keySpec: t.field({ type: DataKeySpec }),
      numberOfBytes: t.int({ description: '1-1024; give exactly one of keySpec and numberOfBytes.' }),
      grantTokens: t.stringList(),
      dryRun: t.boolean(),
    }),
  });

kmsField('GenerateDataKey', {
  type: builder.objectRef<{ plaintext: Buffer; ciphertextBlob: Buffer; keyId: string; keyMaterialId: string }>('GenerateDataKeyResponse').implement({
    fields: (f) => ({
      plaintext: f.expose('plaintext', { type: 'Base64' }),
      ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      keyMaterialId: f.exposeString('keyMaterialId'),
    }),
  }),
  description: 'GenerateDataKey: a data key for envelope encryption, in plaintext and encrypted. Its ciphertext id is its dataKeyId in the audit log.',
  input: GenerateDataKeyInput('GenerateDataKeyInput'),
});

kmsField('GenerateDataKeyWithoutPlaintext', {
  type: builder.objectRef<{ ciphertextBlob: Buffer; keyId: string; keyMaterialId: string }>('GenerateDataKeyWithoutPlaintextResponse').implement({
    fields: (f) => ({
      ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      keyMaterialId: f.exposeString('keyMaterialId'),
    }),
  }),
  description: 'GenerateDataKeyWithoutPlaintext: only the encrypted data key.',
  input: GenerateDataKeyInput('GenerateDataKeyWithoutPlaintextInput'),
});

const GenerateRandomInput = builder.inputType('GenerateRandomInput', {
  fields: (t) => ({ numberOfBytes: t.int({ description: '1-1024.' }), customKeyStoreId: t.string() }),
});

kmsField('GenerateRandom', {
  type: builder.objectRef<{ plaintext: Buffer }>('GenerateRandomResponse').implement({
    fields: (f) => ({ plaintext: f.expose('plaintext', { type: 'Base64' }) }),
  }),
  description: 'GenerateRandom: random bytes from the service CSPRNG.',
  input: GenerateRandomInput,
});
