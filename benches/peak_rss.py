#!/usr/bin/env python3
"""Runs a command, passes its output through, and appends `peak_rss_mb=N`: the peak
resident set size of the command's process tree (ru_maxrss of the reaped child)."""
import resource
import subprocess
import sys

proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(proc.stdout)
sys.stderr.write(proc.stderr)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"peak_rss_mb={peak_kb / 1024:.1f}")
sys.exit(proc.returncode)
