"""Issue 18's differential harness: main's code and a candidate checkout run in separate processes on the
same inputs, their outputs compared byte for byte.

- gen_inputs.py (the corpus: simulated days of both licences, perturbed, mutated, hostile, memo twins),
  reader_edges.py, csv_inputs.py, licence_variants.py: inputs, written once under main's code;
- runner.py: one side's outputs (check, parse, check-licences, monitor, snap-make, snap-resume, replace);
- compare.py: the two sides' outputs, each divergence with its first differing line or key;
- run_diff.sh: the whole comparison for a branch or checkout (paths under /tmp/p10adv, the scratch area of
  the session that wrote it); freeze.py: the frozen form tests/test_throughput_differential.py checks in CI.
"""
