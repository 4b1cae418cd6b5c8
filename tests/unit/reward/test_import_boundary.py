"""The reward model's pure modules import with ray, vllm, deepspeed, prefect and mlflow blocked."""

import subprocess
import sys

PURE = ["flywheel.train.reward_data", "flywheel.train.reward_loop", "flywheel.train.reward_job",
        "flywheel.reward.helpsteer_set", "flywheel.reward.pairs", "flywheel.reward.evaluate",
        "flywheel.reward.score", "flywheel.reward.config", "flywheel.reward.train", "flywheel.reward.commands"]

SCRIPT = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'ray', 'vllm', 'deepspeed', 'prefect', 'mlflow'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import importlib
for m in %r:
    importlib.import_module(m)
print('ok')
"""


def test_reward_modules_do_not_import_engines():
    res = subprocess.run([sys.executable, "-c", SCRIPT % PURE], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "ok"
