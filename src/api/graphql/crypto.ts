/** Symmetric cryptographic operations. */
import { builder } from './builder.ts';
import { EncryptionAlgorithmSpec, KEY_ID } from './common.ts';

const EncryptionAlgorithmInput = EncryptionAlgorithmSpec;
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

builder.mutationField('encrypt', (t) =>
  t.field({
    type: builder.objectRef<{ ciphertextBlob: Buffer; keyId: string; encryptionAlgorithm: string }>('EncryptResponse').implement({
      fields: (f) => ({
        ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        encryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: () => 'SYMMETRIC_DEFAULT' as const }),
      }),
    }),
    description: 'Encrypt: up to 4096 bytes under a KMS key, bound to the encryption context.',
    args: { input: t.arg({ type: EncryptInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.encrypt(ctx.newRequest(), input),
  }),
);

const DecryptInput = builder.inputType('DecryptInput', {
  fields: (t) => ({
    ciphertextBlob: t.field({ type: 'Base64', required: true }),
    keyId: t.string({ description: 'Optional for symmetric ciphertext; when given it must name the key in the blob.' }),
    encryptionContext: t.field({ type: 'EncryptionContext' }),
    grantTokens: t.stringList(),
    encryptionAlgorithm: t.field({ type: EncryptionAlgorithmInput }),
    dryRun: t.boolean(),
  }),
});

builder.mutationField('decrypt', (t) =>
  t.field({
    type: builder.objectRef<{ plaintext: Buffer; keyId: string; encryptionAlgorithm: string; keyMaterialId: string }>('DecryptResponse').implement({
      fields: (f) => ({
        plaintext: f.expose('plaintext', { type: 'Base64' }),
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        encryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: () => 'SYMMETRIC_DEFAULT' as const }),
        keyMaterialId: f.exposeString('keyMaterialId'),
      }),
    }),
    description: 'Decrypt: a mutation because it is a recorded action. The encryption context must be the one used to encrypt.',
    args: { input: t.arg({ type: DecryptInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.decrypt(ctx.newRequest(), input),
  }),
);

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

builder.mutationField('reEncrypt', (t) =>
  t.field({
    type: builder
      .objectRef<{ ciphertextBlob: Buffer; sourceKeyId: string; keyId: string; sourceKeyMaterialId: string; destinationKeyMaterialId: string }>('ReEncryptResponse')
      .implement({
        fields: (f) => ({
          ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
          sourceKeyId: f.exposeString('sourceKeyId'),
          keyId: f.exposeString('keyId', { description: 'The destination key ARN.' }),
          sourceEncryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: () => 'SYMMETRIC_DEFAULT' as const }),
          destinationEncryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: () => 'SYMMETRIC_DEFAULT' as const }),
          sourceKeyMaterialId: f.exposeString('sourceKeyMaterialId'),
          destinationKeyMaterialId: f.exposeString('destinationKeyMaterialId'),
        }),
      }),
    description: 'ReEncrypt: decrypt and encrypt again under another key or context, inside the service.',
    args: { input: t.arg({ type: ReEncryptInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.reEncrypt(ctx.newRequest(), input),
  }),
);

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

builder.mutationField('generateDataKey', (t) =>
  t.field({
    type: builder.objectRef<{ plaintext: Buffer; ciphertextBlob: Buffer; keyId: string; keyMaterialId: string }>('GenerateDataKeyResponse').implement({
      fields: (f) => ({
        plaintext: f.expose('plaintext', { type: 'Base64' }),
        ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        keyMaterialId: f.exposeString('keyMaterialId'),
      }),
    }),
    description: 'GenerateDataKey: a data key for envelope encryption, in plaintext and encrypted. Its ciphertext id is its dataKeyId in the audit log.',
    args: { input: t.arg({ type: GenerateDataKeyInput('GenerateDataKeyInput'), required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.generateDataKey(ctx.newRequest(), input),
  }),
);

builder.mutationField('generateDataKeyWithoutPlaintext', (t) =>
  t.field({
    type: builder.objectRef<{ ciphertextBlob: Buffer; keyId: string; keyMaterialId: string }>('GenerateDataKeyWithoutPlaintextResponse').implement({
      fields: (f) => ({
        ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        keyMaterialId: f.exposeString('keyMaterialId'),
      }),
    }),
    description: 'GenerateDataKeyWithoutPlaintext: only the encrypted data key.',
    args: { input: t.arg({ type: GenerateDataKeyInput('GenerateDataKeyWithoutPlaintextInput'), required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.generateDataKeyWithoutPlaintext(ctx.newRequest(), input),
  }),
);

const GenerateRandomInput = builder.inputType('GenerateRandomInput', {
  fields: (t) => ({ numberOfBytes: t.int({ description: '1-1024.' }), customKeyStoreId: t.string() }),
});

builder.mutationField('generateRandom', (t) =>
  t.field({
    type: builder.objectRef<{ plaintext: Buffer }>('GenerateRandomResponse').implement({
      fields: (f) => ({ plaintext: f.expose('plaintext', { type: 'Base64' }) }),
    }),
    description: 'GenerateRandom: random bytes from the service CSPRNG.',
    args: { input: t.arg({ type: GenerateRandomInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.generateRandom(ctx.newRequest(), input),
  }),
);
