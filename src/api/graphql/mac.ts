/** GenerateMac and VerifyMac with HMAC keys. */
import type { GenerateMacResult, VerifyMacResult } from '../../service/mac-service.ts';
import { builder } from './builder.ts';
import { KEY_ID, kmsField, MacAlgorithmSpec } from './common.ts';

type MacAlgorithm = 'HMAC_SHA_224' | 'HMAC_SHA_256' | 'HMAC_SHA_384' | 'HMAC_SHA_512';

const GenerateMacInput = builder.inputType('GenerateMacInput', {
  fields: (t) => ({
    message: t.field({ type: 'Base64', required: true, description: '1-4096 bytes.' }),
    keyId: t.string(KEY_ID),
    macAlgorithm: t.field({ type: MacAlgorithmSpec, required: true, description: "The HMAC key spec's algorithm (HMAC_256 -> HMAC_SHA_256)." }),
    grantTokens: t.stringList(),
    dryRun: t.boolean(),
  }),
});

kmsField('GenerateMac', {
  type: builder.objectRef<GenerateMacResult>('GenerateMacResponse').implement({
    fields: (f) => ({
      mac: f.expose('mac', { type: 'Base64', description: 'The full-length HMAC tag.' }),
      macAlgorithm: f.field({ type: MacAlgorithmSpec, resolve: (r) => r.macAlgorithm as MacAlgorithm }),
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
    }),
  }),
  description: 'GenerateMac: the HMAC of a message under an HMAC key (KeyUsage GENERATE_VERIFY_MAC). A mutation: it is a recorded action.',
  input: GenerateMacInput,
});

const VerifyMacInput = builder.inputType('VerifyMacInput', {
  fields: (t) => ({
    message: t.field({ type: 'Base64', required: true, description: '1-4096 bytes.' }),
    keyId: t.string(KEY_ID),
    macAlgorithm: t.field({ type: MacAlgorithmSpec, required: true }),
    mac: t.field({ type: 'Base64', required: true, description: 'The MAC to verify.' }),
    grantTokens: t.stringList(),
    dryRun: t.boolean(),
  }),
});

kmsField('VerifyMac', {
  type: builder.objectRef<VerifyMacResult>('VerifyMacResponse').implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      macValid: f.exposeBoolean('macValid', { description: 'Always true: a MAC that does not verify is the error KMSInvalidMacException.' }),
      macAlgorithm: f.field({ type: MacAlgorithmSpec, resolve: (r) => r.macAlgorithm as MacAlgorithm }),
    }),
  }),
  description: 'VerifyMac: checks a MAC against a message under an HMAC key; a mismatch is KMSInvalidMacException.',
  input: VerifyMacInput,
});
