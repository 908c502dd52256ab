#!/bin/bash
# usage: run_diff.sh NAME REF|PATH [modes...]   (modes: check monitor monsub snap edge; default check monsub snap edge lic)
set -u
export PATH=/work/main/.venv/bin:$PATH
H=/work/wt/p10adv/tests/throughput_diff
NAME=$1; REF=$2; shift 2
MODES=${@:-parse big check csv snap revsnap replace lic odd edge monsub}
if [ -d "$REF" ]; then CAND=$REF; else
  CAND=/tmp/p10adv/cand-$NAME
  if [ -d $CAND ]; then git -C $CAND checkout -q --detach $REF; else git -C /work/main worktree add -q --detach $CAND $REF; fi
fi
echo "candidate $NAME at $(git -C $CAND rev-parse --short HEAD) ($CAND) $(date -u +%H:%M)"
OUT=/tmp/p10adv/out-$NAME
mkdir -p $OUT
SUB=hostile,memo,mixed-s1,mixed-s3,perturbed-s1,perturbed-s3,crlf,bom,chars,fuzz,sim-s1,sim-s3
for m in $MODES; do
  case $m in
    check) rm -rf $OUT/check; PYTHONPATH=$CAND timeout 1500 python $H/runner.py check /tmp/p10adv/inputs $OUT/check > $OUT.check.log 2>&1
           python $H/compare.py /tmp/p10adv/out-main/check $OUT/check;;
    edge) rm -rf $OUT/edge; PYTHONPATH=$CAND timeout 1500 python $H/runner.py check /tmp/p10adv/inputs-edge $OUT/edge > $OUT.edge.log 2>&1
           python $H/compare.py /tmp/p10adv/out-main/edge $OUT/edge;;
    monitor) rm -rf $OUT/mon; PYTHONPATH=$CAND timeout 1500 python $H/runner.py monitor /tmp/p10adv/inputs $OUT/mon > $OUT.mon.log 2>&1
           rm -rf $OUT/mon/chdb; python $H/compare.py /tmp/p10adv/out-main/mon $OUT/mon;;
    monsub) rm -rf $OUT/mon; PYTHONPATH=$CAND timeout 1500 python $H/runner.py monitor /tmp/p10adv/inputs $OUT/mon $SUB > $OUT.mon.log 2>&1
           rm -rf $OUT/mon/chdb; python $H/compare.py /tmp/p10adv/out-main/mon $OUT/mon --subset;;
    parse) rm -rf $OUT/parse; PYTHONPATH=$CAND timeout 1500 python $H/runner.py parse /tmp/p10adv/inputs $OUT/parse > $OUT.parse.log 2>&1
           PYTHONPATH=$CAND timeout 1500 python $H/runner.py parse /tmp/p10adv/inputs-edge $OUT/parse edge-straddle,edge-bad,edge-mixed,edge-seps,edge-nul >> $OUT.parse.log 2>&1
           PYTHONPATH=$CAND timeout 600 python $H/runner.py parse /tmp/p10adv/inputs-nest $OUT/parse >> $OUT.parse.log 2>&1
           python $H/compare.py /tmp/p10adv/out-main/parse $OUT/parse;;
    replace) rm -rf $OUT/replace; PYTHONPATH=$CAND timeout 900 python $H/runner.py replace /tmp/p10adv/inputs $OUT/replace > $OUT.replace.log 2>&1
           python $H/compare.py /tmp/p10adv/out-main/replace $OUT/replace;;
    revsnap) rm -rf $OUT/snaps $OUT/revsnap; PYTHONPATH=$CAND timeout 900 python $H/runner.py snap-make /tmp/p10adv/inputs $OUT/snaps > $OUT.revsnap.log 2>&1
           PYTHONPATH=/tmp/p10adv/base timeout 900 python $H/runner.py snap-resume /tmp/p10adv/inputs $OUT/revsnap "" $OUT/snaps >> $OUT.revsnap.log 2>&1
           python $H/compare.py /tmp/p10adv/out-main/snap $OUT/revsnap | sed 's/^/(main restoring the candidate'"'"'s snapshots) /';;
    csv) rm -rf $OUT/csv; PYTHONPATH=$CAND timeout 900 python $H/runner.py check /tmp/p10adv/inputs-csv $OUT/csv > $OUT.csv.log 2>&1
           python $H/compare.py /tmp/p10adv/out-main/csv $OUT/csv;;
    odd) rm -rf $OUT/mon-odd; PYTHONPATH=$CAND timeout 900 python $H/runner.py monitor /tmp/p10adv/inputs-odd $OUT/mon-odd > $OUT.odd.log 2>&1
           rm -rf $OUT/mon-odd/chdb; python $H/compare.py /tmp/p10adv/out-main/mon-odd $OUT/mon-odd;;
    big) rm -rf $OUT/parse-big; PYTHONPATH=$CAND timeout 900 python $H/runner.py parse /tmp/p10adv/inputs-big $OUT/parse-big > $OUT.big.log 2>&1
           python $H/compare.py /tmp/p10adv/out-main/parse-big $OUT/parse-big;;
    lic) rm -rf $OUT/lic; PYTHONPATH=$CAND timeout 1500 python $H/runner.py check-licences /tmp/p10adv/inputs $OUT/lic perturbed-s1,mixed-s3 /tmp/p10adv/licences > $OUT.lic.log 2>&1
           python $H/compare.py /tmp/p10adv/out-main/lic $OUT/lic;;
    snap) rm -rf $OUT/snap; PYTHONPATH=$CAND timeout 1500 python $H/runner.py snap-resume /tmp/p10adv/inputs $OUT/snap "" /tmp/p10adv/snaps > $OUT.snap.log 2>&1
           python $H/compare.py /tmp/p10adv/out-main/snap $OUT/snap;;
  esac
done
echo "done $NAME $(date -u +%H:%M)"
