"""pyzmq side of keygen's certificate interop tests.

  zcert_pyzmq.py load PATH...            load_certificate() each file
  zcert_pyzmq.py create DIR NAME [K=V...] create_certificates(), then load both

Prints one JSON document on stdout. Keys go only to stdout, which the Go test
reads and compares; nothing here prints them anywhere else.
"""
import json
import sys

import zmq.auth


def load(path):
    public, secret = zmq.auth.load_certificate(path)
    return {
        "path": path,
        "public": public.decode() if public else None,
        "secret": secret.decode() if secret else None,
    }


def main(argv):
    if argv[0] == "load":
        print(json.dumps([load(p) for p in argv[1:]]))
    elif argv[0] == "create":
        directory, name = argv[1], argv[2]
        metadata = dict(kv.split("=", 1) for kv in argv[3:]) or None
        public_file, secret_file = zmq.auth.create_certificates(directory, name, metadata)
        print(json.dumps({"public_file": load(public_file), "secret_file": load(secret_file)}))
    else:
        raise SystemExit("unknown mode " + argv[0])


if __name__ == "__main__":
    main(sys.argv[1:])
