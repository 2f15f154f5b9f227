/** Sign and Verify with asymmetric SIGN_VERIFY keys. */
import type { SignResult, VerifyResult } from '../../service/signing-service.ts';
import { builder } from './builder.ts';
import { KEY_ID, kmsField, SigningAlgorithmSpec } from './common.ts';

type SigningAlgorithm = (typeof SigningAlgorithmSpec)['$inferType'];

const MessageType = builder.enumType('MessageType', {
  description:
    'RAW: the message itself (at most 4096 bytes). DIGEST: its digest, ' +
    "exactly the length of the algorithm's hash. EXTERNAL_MU: ML-DSA's 64-byte mu (FIPS 204 section 6.2).",
  values: ['RAW', 'DIGEST', 'EXTERNAL_MU'] as const,
});

const SignInput = builder.inputType('SignInput', {
  fields: (t) => ({
    keyId: t.string(KEY_ID),
    message: t.field({ type: 'Base64', required: true, description: '1-4096 bytes: the message (RAW) or its digest (DIGEST).' }),
    messageType: t.field({ type: MessageType, description: 'RAW when absent.' }),
    grantTokens: t.stringList(),
    signingAlgorithm: t.field({ type: SigningAlgorithmSpec, required: true, description: "One of the key spec's signing algorithms." }),
    dryRun: t.boolean(),
  }),
});

kmsField('Sign', {
  type: builder.objectRef<SignResult>('SignResponse').implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      signature: f.expose('signature', {
        type: 'Base64',
        description: 'RSA: the modulus-length signature; ECDSA: DER-encoded (r, s); Ed25519 and ML-DSA: the raw signature.',
      }),
      signingAlgorithm: f.field({ type: SigningAlgorithmSpec, resolve: (r) => r.signingAlgorithm as SigningAlgorithm }),
    }),
  }),
  description:
    'Sign: a signature of a message or digest under an asymmetric SIGN_VERIFY key. A mutation: ' +
    'it is a recorded action (the record keeps the message length, never the message).',
  input: SignInput,
});

const VerifyInput = builder.inputType('VerifyInput', {
  fields: (t) => ({
    keyId: t.string(KEY_ID),
    message: t.field({ type: 'Base64', required: true, description: '1-4096 bytes: the message (RAW) or its digest (DIGEST).' }),
    messageType: t.field({ type: MessageType, description: 'RAW when absent.' }),
    signature: t.field({ type: 'Base64', required: true, description: 'The signature to verify.' }),
    signingAlgorithm: t.field({ type: SigningAlgorithmSpec, required: true }),
    grantTokens: t.stringList(),
    dryRun: t.boolean(),
  }),
});

kmsField('Verify', {
  type: builder.objectRef<VerifyResult>('VerifyResponse').implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      signatureValid: f.exposeBoolean('signatureValid', {
        description: 'Always true: a signature that does not verify is the error KMSInvalidSignatureException.',
      }),
      signingAlgorithm: f.field({ type: SigningAlgorithmSpec, resolve: (r) => r.signingAlgorithm as SigningAlgorithm }),
    }),
  }),
  description:
    'Verify: checks a signature against a message or digest under an asymmetric SIGN_VERIFY key; an invalid signature is KMSInvalidSignatureException.',
  input: VerifyInput,
});
