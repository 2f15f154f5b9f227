#!/usr/bin/env python3
"""boto3, unchanged, against keyledger's AWS endpoint.

Usage: boto3_roundtrip.py ENDPOINT_URL
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Prints one
JSON document: each step's result (blobs as base64) with the request id
botocore read from x-amzn-RequestId, so the caller can find its audit record.
Expected failures are caught and reported as {"error": {...}}; anything
unexpected raises and exits non-zero.
"""
import base64
import json
import sys
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def b64(data):
    return base64.b64encode(data).decode("ascii")


def meta(response):
    m = response["ResponseMetadata"]
    return {"requestId": m.get("RequestId"), "httpStatus": m.get("HTTPStatusCode")}


def expect_error(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        return {
            "error": {
                "code": error.response["Error"].get("Code"),
                "message": error.response["Error"].get("Message"),
            },
            **meta(error.response),
        }
    raise AssertionError("%s succeeded where it should have failed" % call.__name__)


def main():
    endpoint = sys.argv[1]
    kms = boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name="us-east-1",
        # One attempt: a retried request would leave two audit records and hide a 5xx.
        config=Config(retries={"total_max_attempts": 1}),
    )
    out = {"userAgentPrefix": "Boto3/" + boto3.__version__}
    context = {"tenant": "acme", "app": "boto3"}

    created = kms.create_key(Description="created by boto3")
    key_id = created["KeyMetadata"]["KeyId"]
    key_arn = created["KeyMetadata"]["Arn"]
    out["createKey"] = {"keyId": key_id, "arn": key_arn, "keyState": created["KeyMetadata"]["KeyState"], **meta(created)}

    plaintext = b"boto3 says hello \x00\xff"
    encrypted = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
    out["encrypt"] = {"keyId": encrypted["KeyId"], "encryptionAlgorithm": encrypted["EncryptionAlgorithm"], **meta(encrypted)}

    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext=context)
    out["decrypt"] = {
        "keyId": decrypted["KeyId"],
        "roundTrips": decrypted["Plaintext"] == plaintext,
        "plaintext": b64(decrypted["Plaintext"]),
        **meta(decrypted),
    }

    data_key = kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256", EncryptionContext=context)
    out["generateDataKey"] = {
        "keyId": data_key["KeyId"],
        "plaintextLength": len(data_key["Plaintext"]),
        "ciphertextLength": len(data_key["CiphertextBlob"]),
        **meta(data_key),
    }

    described = kms.describe_key(KeyId=key_id)
    metadata = described["KeyMetadata"]
    out["describeKey"] = {
        "keyMetadata": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in metadata.items()},
        "creationDateIsDatetime": hasattr(metadata["CreationDate"], "isoformat"),
        **meta(described),
    }

    alias = kms.create_alias(AliasName="alias/boto3-e2e", TargetKeyId=key_id)
    out["createAlias"] = meta(alias)
    aliases = kms.list_aliases(KeyId=key_id)
    out["listAliases"] = {
        "aliases": [{"AliasName": a["AliasName"], "AliasArn": a["AliasArn"], "TargetKeyId": a.get("TargetKeyId")} for a in aliases["Aliases"]],
        "truncated": aliases.get("Truncated"),
        **meta(aliases),
    }

    out["decryptWrongContext"] = expect_error(
        kms.decrypt, CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext={"tenant": "evil", "app": "boto3"}
    )
    missing = str(uuid.uuid4())
    out["describeMissingKey"] = {"keyId": missing, **expect_error(kms.describe_key, KeyId=missing)}

    print(json.dumps(out))


if __name__ == "__main__":
    main()
