"""Host devices: chosen before JAX starts; seeds split over them compute what one device does."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from behavior_priors.training.devices import use_host_devices
    took = use_host_devices(2)
    import jax

    jax.devices()  # JAX starts here
    from behavior_priors.training.loop import Trainer
    from behavior_priors.training.multiseed import MultiSeedTrainer
    from tests.training.test_multiseed import CONFIG, _close

    again = use_host_devices(3)  # JAX has started: no effect
    multi = MultiSeedTrainer(CONFIG, [3, 5])
    sharded = multi.sharding is not None and len(multi.stacked[0].sharding.device_set) == 2
    multi.run()
    for i, seed in enumerate((3, 5)):
        alone = Trainer(CONFIG.replace(seed=seed))
        alone.run()
        _close(multi.runs[i].history, alone.history)
    print(json.dumps([took, again, len(jax.devices()), sharded]))
    """
)


def test_seeds_split_over_two_host_devices_run_as_alone():
    """In a fresh process, ``use_host_devices(2)`` gives JAX two CPU devices, a later call
    changes nothing, and two seeds split one per device log what each seed's run alone logs
    (to float rounding)."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False, cwd=root
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, False, 2, True]
