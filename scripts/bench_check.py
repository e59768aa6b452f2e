#!/usr/bin/env python3
"""`check` against Python's stdlib parse (issue 11), single core, CPU time.

    python3 scripts/bench_check.py ROUNDS PATH...    (folders: every *.eml under them)

For each mail set: Python's `email.message_from_bytes` (the default compat32 policy, the faster one)
plus a walk over the parts (the least a program must do to see a mail's structure; no body is
decoded), ROUNDS times; then `target/release/mailintake check --bench ROUNDS` on the same files
(the whole verdict: parse, decode, archives, form, rules). Both are timed in process CPU time,
so a busy machine slows both alike. Prints µs per mail for each and the ratio.
"""
import email.parser
import email.policy
import os
import re
import subprocess
import sys
import time

rounds = int(sys.argv[1])
files = []
for p in sys.argv[2:]:
    if os.path.isdir(p):
        for root, _, names in os.walk(p):
            files += [os.path.join(root, n) for n in names if n.endswith(".eml")]
    else:
        files.append(p)
files.sort()
mails = [open(f, "rb").read() for f in files]


t0 = time.process_time()
for _ in range(rounds):
    for raw in mails:
        msg = email.message_from_bytes(raw)
        for part in msg.walk():
            part.get_content_type()
py = (time.process_time() - t0) / (rounds * len(mails))

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = subprocess.run(
    [os.path.join(repo, "target/release/mailintake"), "check", "--bench", str(rounds), *files],
    capture_output=True, text=True, check=True, cwd=repo,
).stdout
cpu = float(re.search(r"cpu_s=([0-9.]+)", out).group(1))
rs = cpu / (rounds * len(mails))
print(f"{len(mails)} mails ({sum(map(len, mails)) / 1e6:.1f} MB) x {rounds}: "
      f"python parse {py * 1e6:.0f} us/mail, mailintake check {rs * 1e6:.0f} us/mail (CPU): "
      f"{py / rs:.1f}x")
