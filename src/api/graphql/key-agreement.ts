/** DeriveSharedSecret with KEY_AGREEMENT key pairs. */
import type { DeriveSharedSecretResult } from '../../service/key-agreement-service.ts';
import { builder } from './builder.ts';
import { KEY_ID, KeyAgreementAlgorithmSpec, kmsField, OriginType } from './common.ts';
import type { ORIGINS } from '../../domain/key.ts';

export const RecipientInfoInput = builder.inputType('RecipientInfoInput', {
  description: 'AWS Nitro Enclaves attestation: not supported by keyledger (UnsupportedOperationException).',
  fields: (t) => ({
    keyEncryptionAlgorithm: t.string(),
    attestationDocument: t.field({ type: 'Base64' }),
  }),
});

const DeriveSharedSecretInput = builder.inputType('DeriveSharedSecretInput', {
  fields: (t) => ({
    keyId: t.string(KEY_ID),
    keyAgreementAlgorithm: t.field({ type: KeyAgreementAlgorithmSpec, required: true }),
    publicKey: t.field({ type: 'Base64', required: true, description: "The peer's public key: DER SubjectPublicKeyInfo on the key's curve." }),
    grantTokens: t.stringList(),
    dryRun: t.boolean(),
    recipient: t.field({ type: RecipientInfoInput }),
  }),
});

kmsField('DeriveSharedSecret', {
  type: builder.objectRef<DeriveSharedSecretResult>('DeriveSharedSecretResponse').implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      sharedSecret: f.expose('sharedSecret', { type: 'Base64', description: 'The raw ECDH shared secret (the x coordinate); derive keys from it with a KDF.' }),
      keyAgreementAlgorithm: f.field({ type: KeyAgreementAlgorithmSpec, resolve: () => 'ECDH' as const }),
      keyOrigin: f.field({ type: OriginType, resolve: (r) => r.keyOrigin as (typeof ORIGINS)[number] }),
    }),
  }),
  description: "DeriveSharedSecret: ECDH between a KEY_AGREEMENT key's private key and a peer's public key. A mutation: it is a recorded action.",
  input: DeriveSharedSecretInput,
});
