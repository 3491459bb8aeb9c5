#!/bin/sh
# Cargo's target runner for x86_64-pc-windows-gnu: runs a test binary (and whatever it
# spawns) under Wine, in the prefix and wineserver that scripts/test-windows.sh set up.
exec wine "$@"
