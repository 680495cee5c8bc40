"""A small real OpenEnv server for leap's protocol tests: a counter to bring to a target.

Reset arguments: `target` (default 3); `expert` (default true; false: no expert action and no
plan, as an environment without an expert); `fail` ("die", "stall", "error", "malformed") and `at`
(the step that fails, default 1) make the server misbehave on purpose; `pidfile` writes the
server's process id there at reset. The observation follows leap's convention: the admissible
commands, the privileged target, the expert's next action.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "assets" / "envs"))

from leap_openenv import LeapObservation, expert, privileged, serve  # noqa: E402
from openenv.core.env_server.interfaces import Environment  # noqa: E402
from openenv.core.env_server.types import Observation, State  # noqa: E402


class Malformed(Observation):
    """An observation outside leap's convention: `text` is a number, `task` is missing."""

    text: int = 0


class Counter(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self):
        super().__init__()
        self.count = 0
        self.steps = 0
        self.target = 3
        self.fail = None
        self.at = 1
        self.expert = True

    def observe(self, text, done=False):
        left = self.target - self.count
        return LeapObservation(
            text=text,
            task=f"Bring the counter to the hidden target.",
            admissible_actions=["add", "wait"],
            privileged=privileged(
                f"the target is {self.target}",
                {"target": str(self.target)},
                ["add"] * left if self.expert else None,
            ),
            expert_action=None
            if done or not self.expert
            else expert("add", "Adding brings the counter closer."),
            won=self.count == self.target,
            info={"count": self.count},
            reward=self.count / self.target,
            done=done,
        )

    def reset(
        self, seed=None, episode_id=None, target=3, fail=None, at=1, pidfile=None, expert=True, **kwargs
    ):
        self.count, self.steps = 0, 0
        self.target, self.fail, self.at, self.expert = int(target), fail, int(at), bool(expert)
        if pidfile:
            Path(pidfile).write_text(str(os.getpid()))
        if self.fail == "stall" and self.at == 0:
            time.sleep(3600)
        return self.observe("The counter shows 0.")

    def step(self, action, timeout_s=None, **kwargs):
        self.steps += 1
        if self.fail and self.steps == self.at:
            if self.fail == "die":
                print("fixture: dying on purpose", file=sys.stderr, flush=True)
                os._exit(3)
            if self.fail == "stall":
                time.sleep(3600)
            if self.fail == "error":
                raise RuntimeError("fixture: this step is refused")
            if self.fail == "malformed":
                return Malformed(text=7, reward=0.0, done=False)
        if action.command == "add":
            self.count += 1
            text = f"The counter shows {self.count}."
        else:
            text = "Nothing happens."
        return self.observe(text, done=self.count == self.target)

    @property
    def state(self):
        return State(step_count=self.steps)


if __name__ == "__main__":
    serve(Counter, "a counter for leap's protocol tests")
