"""InterCode-Bash (Yang et al. 2023, Princeton NLP) as an OpenEnv server in leap's convention.

UNTESTED HERE: InterCode runs its tasks in Docker containers, and neither Docker nor its images
could be used where this adapter was written. It follows InterCode's README (the `intercode-bench`
package: `BashEnv(bash_image_name, data_path=bash_test_data)`, `reset(index)`, `step(action)`,
"submit" to finish) and its source (intercode/envs/bash/bash_env.py, ic_env.py); it may need
small fixes on first use.

    python intercode.py --port 8126

Reset arguments: `index` (the task's index in the data file), `image_name` (default: the
package's `bash_image_name`; InterCode's setup builds it, or `bash_build_docker()` does),
`data_path` (default: the package's `bash_test_data`), `build_image` (default false: call
`bash_build_docker()` first).

The student reads the task's query and each command's output; the action is free text (a bash
command, or "submit" to be scored), so `admissible_actions` is null. Only the teacher sees the gold
command and its output, which this adapter runs once per episode in InterCode's evaluation
container (the one its reward uses). The expert runs the gold command, then submits; it follows a
pointer and has no re-planner: after a deviation it still proposes the next gold step. The reward
is InterCode's score (0 to 1) once submitted, 0 before.

InterCode names its containers after the image (`<image>_ic_ctr`, `<image>_ic_ctr_eval`), so two
sessions would share a shell: this server takes one session at a time (`--max-sessions 1`). The
containers stay up between sessions and after the server exits, as InterCode leaves them.
"""

from __future__ import annotations

from typing import Any, List, Optional

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import State

from leap_openenv import LeapAction, LeapObservation, engine_module, expert, privileged, serve

# One BashEnv for the server's life: its containers are slow to start and shared anyway.
_shared: dict = {}


def _bash_env(image_name: str, data_path: str) -> Any:
    key = (image_name, data_path)
    if _shared.get("key") != key:
        if _shared.get("env") is not None:
            _shared["env"].close()
        _shared["env"] = engine_module("intercode.envs").BashEnv(image_name, data_path=data_path, verbose=False)
        _shared["key"] = key
    return _shared["env"]


# What InterCode's own reset of a container runs (bash_env.py, GIT_RESET_SCRIPT).
GIT_RESET = "git reset --hard; git clean -fd;"


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


class InterCodeBash(Environment):
    # Containers are named after the image: one session at a time (see the top of this file).
    SUPPORTS_CONCURRENT_SESSIONS = False

    def __init__(self) -> None:
        super().__init__()
        self._env: Optional[Any] = None
        self._state = State()
        self._done = True
        self._reward = 0.0
        self._gold: List[str] = []
        self._gold_output = ""
        self._next_gold = 0
        self._on_gold_path = True
        self._query = ""
        self._index = -1

    @property
    def state(self) -> State:
        return self._state

    def reset(
        self,
        index: Optional[int] = None,
        image_name: Optional[str] = None,
        data_path: Optional[str] = None,
        build_image: bool = False,
        seed: Optional[int] = None,
        episode_id: Optional[str] = None,
        **kwargs: Any,
    ) -> LeapObservation:
        if kwargs:
            raise ValueError(
                f"unknown reset argument(s) {sorted(kwargs)}: InterCode takes index, image_name, "
                "data_path, build_image, seed"
            )
        if index is None:
            raise ValueError("reset needs `index` (the task's index in InterCode's data file)")
        if image_name is None or data_path is None:
            assets = engine_module("intercode.assets")
            image_name = image_name or assets.bash_image_name
            data_path = data_path or assets.bash_test_data
            if build_image:
                assets.bash_build_docker()
        self._env = _bash_env(image_name, data_path)
        env = self._env
        query, _ = env.reset(int(index))
        self._index = int(index)
        self._query = str(query)
        gold = env.gold
        self._gold = [str(g) for g in gold] if isinstance(gold, list) else [str(gold)]
        self._gold_output = self._run_gold()
        self._next_gold = 0
        self._on_gold_path = True
        self._done = False
        self._reward = 0.0
        self._state = State(episode_id=episode_id, step_count=0)
        return self._observe(self._query)

    def _run_gold(self) -> str:
        """The gold command's output, from InterCode's evaluation container, which its reward
        resets before every use."""
        env = self._env
        try:
            env.container_eval.exec_run(env.clean_cmd(GIT_RESET))
            result = env.container_eval.exec_run(env.clean_cmd(";".join(self._gold)))
            return result.output.decode("utf-8", errors="replace")
        except Exception as error:  # the output is a privileged hint, not needed to play
            return f"(the gold command could not be run: {error})"

    def step(self, action: LeapAction, timeout_s: Optional[float] = None, **kwargs: Any) -> LeapObservation:
        if self._env is None:
            raise RuntimeError("no episode: reset first")
        if self._done:
            raise RuntimeError("the episode is over: reset to start another")
        command = action.command.strip()
        plan = self._gold + ["submit"]
        if self._next_gold < len(plan) and _same(command, plan[self._next_gold]):
            self._next_gold += 1
        else:
            self._on_gold_path = False
        text, reward, done, _ = self._env.step(command)
        self._state.step_count += 1
        self._done = bool(done)
        if done:
            self._reward = float(reward or 0.0)
        return self._observe("" if text is None else str(text))

    def _observe(self, text: str) -> LeapObservation:
        plan = self._gold + ["submit"]
        remaining = plan[self._next_gold:]
        facts = {
            "gold command": "; ".join(self._gold),
            "gold output": self._gold_output,
            "task index": str(self._index),
        }
        lines = [
            "Gold command: " + "; ".join(self._gold),
            "Its output:\n" + self._gold_output,
        ]
        if self._done or not remaining:
            proposal = None
        elif remaining[0] == "submit":
            proposal = expert("submit", "the gold command has run; submit to be scored")
        else:
            proposal = expert(remaining[0], "the gold command")
        return LeapObservation(
            text=text,
            task=self._query,
            admissible_actions=None,
            privileged=privileged("\n".join(lines), facts, remaining if self._on_gold_path else None),
            expert_action=proposal,
            won=self._done and self._reward >= 1.0,
            info={"index": self._index, "action_executed": (self._env.info or {}).get("action_executed")},
            reward=self._reward,
            done=self._done,
        )

    def close(self) -> None:
        # The containers stay up for the next session (InterCode finds them again by name).
        self._env = None


if __name__ == "__main__":
    serve(InterCodeBash, "InterCode-Bash as an OpenEnv server in leap's convention", max_sessions=1)
