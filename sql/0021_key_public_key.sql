-- Asymmetric keys (issue 13): the public key in the key projection, DER
-- SubjectPublicKeyInfo, NULL for symmetric and HMAC keys. It is public, so it
-- is kept in clear here and in the KeyCreated event it is projected from
-- (GetPublicKey reads it without unwrapping the private key). The private key
-- and HMAC keys are material: wrapped under the root key in key_materials,
-- like symmetric material.
ALTER TABLE keys ADD COLUMN public_key bytea;
