#!/bin/sh
# A scenario that must fail: one check passes, one does not. The harness has to report the boot as
# failed (non-zero exit, the failed check recorded) even though the scenario itself ran to the end.
true
python3 "$CHECKLIB" check "a check that holds" $? "true exits 0"
test -e /nonexistent/on-purpose
python3 "$CHECKLIB" check "a check that fails on purpose" $? "/nonexistent/on-purpose is missing"
exec python3 "$CHECKLIB" finish
