"""Reads Z85 secret keys, one a line, on stdin; writes zmq.curve_public() of
each, one a line, on stdout. One process for all keys."""
import sys

import zmq

out = []
for line in sys.stdin:
    line = line.strip()
    if line:
        out.append(zmq.curve_public(line.encode()).decode())
sys.stdout.write("\n".join(out) + "\n")
