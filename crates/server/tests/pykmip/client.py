"""Drives PyKMIP's ProxyKmipClient against the KMS's KMIP socket; every operation is checked.

Usage: client.py HOST PORT CERT KEY CA VERSION (1.2 or 2.0). Prints `ok <operation>` for each
check that passed; exits non-zero (with a traceback) at the first failure.
"""

import sys

from kmip import enums
from kmip.core.factories import attributes as attribute_factory
from kmip.core import objects as core_objects
from kmip.pie import client as pie_client
from kmip.pie import objects

host, port, cert, key, ca, version = sys.argv[1:7]
kmip_version = {"1.2": enums.KMIPVersion.KMIP_1_2, "2.0": enums.KMIPVersion.KMIP_2_0}[version]


def ok(what):
    print("ok", what, flush=True)


with pie_client.ProxyKmipClient(
    hostname=host, port=int(port), cert=cert, key=key, ca=ca,
    config_file="/dev/null", kmip_version=kmip_version,
) as c:
    # create, activate, encrypt, decrypt
    uid = c.create(enums.CryptographicAlgorithm.AES, 256, name="pykmip-aes")
    ok("create")
    c.activate(uid)
    ok("activate")
    params = {
        "block_cipher_mode": enums.BlockCipherMode.CBC,
        "padding_method": enums.PaddingMethod.PKCS5,
        "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
    }
    iv = b"\x01" * 16
    encrypted, _ = c.encrypt(b"from PyKMIP", uid=uid, cryptographic_parameters=params,
                             iv_counter_nonce=iv)
    ok("encrypt")
    plain = c.decrypt(encrypted, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv)
    assert plain == b"from PyKMIP", plain
    ok("decrypt")

    # get, get_attributes, get_attribute_list, locate
    key_object = c.get(uid)
    assert len(key_object.value) == 32, key_object
    ok("get")
    _, attributes = c.get_attributes(uid, ["Cryptographic Algorithm", "Cryptographic Length"])
    values = {a.attribute_name.value: a.attribute_value.value for a in attributes}
    assert values.get("Cryptographic Length") == 256, values
    ok("get_attributes")
    names = c.get_attribute_list(uid)
    assert "Cryptographic Algorithm" in names, names
    ok("get_attribute_list")
    found = c.locate(attributes=[
        attribute_factory.AttributeFactory().create_attribute(
            enums.AttributeType.NAME, "pykmip-aes")
    ])
    assert uid in found, found
    ok("locate")

    # register
    registered = c.register(objects.SymmetricKey(
        enums.CryptographicAlgorithm.AES, 128, b"\x07" * 16, name="pykmip-registered"))
    assert c.get(registered).value == b"\x07" * 16
    ok("register")

    # mac
    hmac_key = c.create(enums.CryptographicAlgorithm.HMAC_SHA256, 256,
                        cryptographic_usage_mask=[enums.CryptographicUsageMask.MAC_GENERATE])
    c.activate(hmac_key)
    _, mac = c.mac(b"mac me", uid=hmac_key, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
    assert len(mac) == 32, mac
    ok("mac")

    # create_key_pair, sign, signature_verify
    public, private = c.create_key_pair(enums.CryptographicAlgorithm.RSA, 2048)
    ok("create_key_pair")
    c.activate(public)
    c.activate(private)
    sign_params = {
        "padding_method": enums.PaddingMethod.PSS,
        "cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
        "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
    }
    signature = c.sign(b"signed by PyKMIP", uid=private, cryptographic_parameters=sign_params)
    ok("sign")
    valid = c.signature_verify(b"signed by PyKMIP", signature, uid=public,
                               cryptographic_parameters=sign_params)
    assert valid == enums.ValidityIndicator.VALID, valid
    invalid = c.signature_verify(b"something else", signature, uid=public,
                                 cryptographic_parameters=sign_params)
    assert invalid == enums.ValidityIndicator.INVALID, invalid
    ok("signature_verify")

    # derive_key
    base = c.create(enums.CryptographicAlgorithm.AES, 256,
                    cryptographic_usage_mask=[enums.CryptographicUsageMask.DERIVE_KEY])
    c.activate(base)
    derived = c.derive_key(
        enums.ObjectType.SYMMETRIC_KEY, [base], enums.DerivationMethod.HMAC,
        {"cryptographic_parameters": {"hashing_algorithm": enums.HashingAlgorithm.SHA_256},
         "derivation_data": b"derive me"},
        cryptographic_length=256, cryptographic_algorithm=enums.CryptographicAlgorithm.AES)
    assert len(c.get(derived).value) == 32
    ok("derive_key")

    # attribute changes (KMIP 2.0 operations)
    if version == "2.0":
        values = c.attribute_value_factory
        c.set_attribute(unique_identifier=uid, attribute_name="Contact Information",
                        attribute_value="first contact")
        second = values.create_attribute_value_by_enum(enums.Tags.CONTACT_INFORMATION,
                                                       "second contact")
        c.modify_attribute(unique_identifier=uid,
                           new_attribute=core_objects.NewAttribute(attribute=second))
        _, attributes = c.get_attributes(uid, ["Contact Information"])
        assert [a.attribute_value.value for a in attributes] == ["second contact"], attributes
        c.delete_attribute(
            unique_identifier=uid,
            current_attribute=core_objects.CurrentAttribute(attribute=second))
        _, attributes = c.get_attributes(uid, ["Contact Information"])
        assert attributes == [], attributes
        ok("attribute changes")

    # revoke, destroy
    c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
    ok("revoke")
    c.destroy(uid)
    try:
        c.get(uid)
        raise AssertionError("a destroyed key was served")
    except Exception as e:  # noqa: BLE001 - any KMIP failure is the expected answer
        if isinstance(e, AssertionError):
            raise
    ok("destroy")
print("all ok")
