"""Training curves with DVCLive: logged while SFT and GRPO train, one TSV per quantity under
``plots/<stage>/plots/metrics/``, which dvc.yaml declares as plots (``dvc plots show`` draws
them) and the reports read back.

Curves are rebuilt from the trainer's log history at the start of training, so a run resumed from
a checkpoint has one complete curve, without the steps the interrupted run logged after its last
checkpoint."""

from __future__ import annotations

import re
from pathlib import Path

# Logged besides the loss: the quantities Fig. 2 and a reader of a GRPO run look at first. The
# other per-completion statistics stay in the adapter's log_history.json.
_REWARD = re.compile(r"rewards/(\w+?)(?:_reward)?/mean")
_KEEP = {"loss", "grad_norm", "learning_rate", "mean_token_accuracy", "entropy", "reward",
         "reward_std", "kl"}  # fmt: skip
_RENAMED = {"completions/mean_length": "completion_length"}


def curve_values(logs: dict) -> dict[str, float]:
    """The curve points of one trainer log entry: ``reward_<component>`` per reward function,
    ``completion_length``, and the entries of ``_KEEP``; none for the end-of-training summary."""
    if "train_runtime" in logs:
        return {}
    out = {}
    for key, value in logs.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        m = _REWARD.fullmatch(key)
        name = f"reward_{m.group(1)}" if m else _RENAMED.get(key, key)
        if m or key in _RENAMED or key in _KEEP:
            out[name] = float(value)
    return out


def live_callback(live_dir: Path | str):
    """A TrainerCallback writing the curves of this run to ``live_dir`` on the main process."""
    from transformers import TrainerCallback

    class LiveCurves(TrainerCallback):
        def __init__(self):
            self.live = None

        def _log(self, step: int, logs: dict) -> None:
            values = curve_values(logs)
            if values:
                self.live.step = step
                for name, value in values.items():
                    self.live.log_metric(name, value)

        def on_train_begin(self, args, state, control, **kw):
            if not state.is_world_process_zero:
                return
            from dvclive import Live

            # DVC declares the plots and tracks the runs; DVCLive only writes the files.
            self.live = Live(str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=None,
                             report=None)  # fmt: skip
            for h in state.log_history:  # restored from the checkpoint when resuming
                self._log(h["step"], h)
            self.live.make_summary()

        def on_log(self, args, state, control, logs=None, **kw):
            if self.live is not None and logs:
                self._log(state.global_step, logs)
                self.live.make_summary()

        def on_train_end(self, args, state, control, **kw):
            if self.live is not None:
                self.live.end()

    return LiveCurves()


def read_curves(live_dir: Path | str):
    """The curves of one run as a table: one row per logged step, one column per quantity."""
    import pandas as pd

    metrics = Path(live_dir) / "plots" / "metrics"
    files = sorted(metrics.glob("*.tsv"))
    if not files:
        raise FileNotFoundError(f"{metrics}: no curves; the training stage writes them")
    tables = [pd.read_csv(f, sep="\t").set_index("step")[[f.stem]] for f in files]
    return pd.concat(tables, axis=1).reset_index()
