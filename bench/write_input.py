#!/usr/bin/python3
"""write_input.py: writes N*C*H*W uniform random float32 values (raw, little-endian) to a file.
usage: write_input.py OUT.f32 COUNT [SEED]"""
import array
import random
import sys

random.seed(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
array.array('f', (random.random() for _ in range(int(sys.argv[2])))).tofile(open(sys.argv[1], 'wb'))
