#!/usr/bin/env python3
"""Peak resident memory of a running kms-server under hostile inputs.

    scripts/hostile-memory.py URL PID [ROUNDS]

4 clients at once, each sending in turn a 10 MB JSON TTLV encrypt and a Locate whose Attributes
hold 100,000 Name attributes (a 100k-wide structure, about 19 MB of JSON), ROUNDS times
(default 3). The key of the encrypts is created first. Prints the server's resident memory
(VmRSS) before, its peak (VmHWM) after, and what the server answered. The peak counts from the
process's start: run it on a freshly started server for a figure of these requests alone.
"""
import json
import sys
import threading
import urllib.error
import urllib.request

url, pid = sys.argv[1].rstrip("/"), int(sys.argv[2])
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3


def status(field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} for process {pid}")


def post(body):
    req = urllib.request.Request(f"{url}/kmip/2_1", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, len(r.read())
    except urllib.error.HTTPError as e:
        return e.code, len(e.read())


def node(tag, type_, value):
    return {"tag": tag, "type": type_, "value": value}


create = node("Create", "Structure", [
    node("ObjectType", "Enumeration", "SymmetricKey"),
    node("Attributes", "Structure", [
        node("CryptographicAlgorithm", "Enumeration", "AES"),
        node("CryptographicLength", "Integer", 256),
        node("CryptographicUsageMask", "Integer", 12)])])
with urllib.request.urlopen(urllib.request.Request(
        f"{url}/kmip/2_1", json.dumps(create).encode(), {"Content-Type": "application/json"})) as r:
    uid = json.loads(r.read())["value"][1]["value"]
post(json.dumps(node("Activate", "Structure", [
    node("UniqueIdentifier", "TextString", uid)])).encode())

# 5 MB of plaintext: 10 MB of hex.
encrypt = json.dumps(node("Encrypt", "Structure", [
    node("UniqueIdentifier", "TextString", uid),
    node("CryptographicParameters", "Structure", [
        node("BlockCipherMode", "Enumeration", "GCM")]),
    node("Data", "ByteString", "ab" * (5 * 1024 * 1024))])).encode()
wide = json.dumps(node("Locate", "Structure", [
    node("Attributes", "Structure", [
        node("Name", "Structure", [
            node("NameValue", "TextString", f"n{i}"),
            node("NameType", "Enumeration", "UninterpretedTextString")])
        for i in range(100_000)])])).encode()

answers = {}
lock = threading.Lock()


def client():
    for _ in range(rounds):
        for name, body in (("encrypt 10 MB", encrypt), ("locate 100k-wide", wide)):
            code, size = post(body)
            with lock:
                answers.setdefault((name, code), []).append(size)


before = status("VmRSS:")
threads = [threading.Thread(target=client) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"bodies: encrypt {len(encrypt) / 1e6:.1f} MB, locate {len(wide) / 1e6:.1f} MB; "
      f"4 clients x {rounds} rounds")
for (name, code), sizes in sorted(answers.items()):
    print(f"  {name}: HTTP {code} x {len(sizes)} (answers of {max(sizes)} bytes)")
print(f"resident before {before:.0f} MiB, peak {status('VmHWM:'):.0f} MiB, "
      f"after {status('VmRSS:'):.0f} MiB")
