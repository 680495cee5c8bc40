"""ScienceWorld (Wang et al. 2022, Apache-2.0) as an OpenEnv server in leap's convention.

    python scienceworld.py --port 8123        # leap starts it so, stdin a pipe it holds open

Reset arguments (a scenario's `world.reset`): `task` (one of the 30 task names, e.g. "boil"),
`variation` (an index below the task's number of variations), `simplification` (ScienceWorld's
comma-separated simplifications; default "easy"), `seed` (accepted and unused: the variation fixes
the world). Anything else is an error, so a misspelt argument is not silently ignored.

What the student reads: the engine's text and the task description; the admissible actions are the
engine's valid action-object combinations. What only the teacher sees: the gold action sequence
(from the engine's own solver), the task name and variation, and the engine's goal progress.

The expert follows the gold sequence with a pointer: an action equal to the next gold action
advances it. ScienceWorld has no re-planner, so once the player leaves the gold path the plan is
unknown (`plan` is null) and the expert keeps proposing the next gold action it has not seen,
which may no longer apply. Gold actions that open a door already open (the easy simplification
opens them all) are skipped, as the engine does not list them and they change nothing.

Two quirks of ScienceWorld the student meets: the admissible list is long (100 to over 1,000
actions) and not complete: an object answers to several names and the list spells each action
with one of them, while the gold path may use another ("pour cup containing blue paint in desk in
bowl" where the list says "... in art studio ..."). The expert may so propose an action that is
not in the list; the engine accepts it.

Each WebSocket session has its own ScienceWorld engine: a JVM reached over py4j on ports chosen
by the OS, so sessions never share one. A JVM costs about two seconds to start, so an engine whose
session ended waits in a small pool for the next session instead of being stopped. The JVMs are
started with `die_on_exit`: they stop when this process does.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Dict, List, Optional

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import State

from leap_openenv import LeapAction, LeapObservation, engine_module, expert, privileged, serve

scienceworld = engine_module("scienceworld")

# The engine's own limit counts moves and ends the episode past it; leap enforces the horizon.
ENGINE_STEP_LIMIT = 100_000
# Idle engines kept for later sessions (each a JVM of a few hundred MB).
POOL_SIZE = 8

_pool: List[Any] = []
_pool_lock = threading.Lock()


def _engine() -> Any:
    with _pool_lock:
        if _pool:
            return _pool.pop()
    return scienceworld.ScienceWorldEnv("", envStepLimit=ENGINE_STEP_LIMIT)


def _release(engine: Any) -> None:
    with _pool_lock:
        if len(_pool) < POOL_SIZE:
            _pool.append(engine)
            return
    engine.close()


def _norm(action: str) -> str:
    return " ".join(action.lower().split())


def _as_listed(action: str, listed: set) -> str:
    """The gold `action` in the admissible list's wording when the list words it otherwise (the
    gold path says `pour X in Y`, the list `pour X into Y`; the engine takes both), else as is."""
    if action in listed:
        return action
    words = action.split(" ")
    for i, word in enumerate(words):
        if word == "in":
            candidate = " ".join(words[:i] + ["into"] + words[i + 1 :])
            if candidate in listed:
                return candidate
    return action


# A gold "open" of a door that is open already (the easy simplification opens every door; the
# gold path still opens them): the engine lists no such action and the step changes nothing.
DOOR_OPEN = re.compile(r"^open (door to .+|.+ door)$")
# A line of the engine's goal progress: index, done, goal class, description.
GOAL_LINE = re.compile(r"^\d+\t(true|false)\t\s*\S+\t(.+)$")


def _progress(raw: str) -> str:
    """The engine's goal progress table as one line per subgoal ("done: ..." / "to do: ...")."""
    lines, section = [], ""
    for line in raw.splitlines():
        found = GOAL_LINE.match(line.strip("\n"))
        if found:
            state = "done" if found.group(1) == "true" else "to do"
            lines.append(f"{section}{state}: {found.group(2).strip()}")
        elif line.startswith("Sequential"):
            section = ""
        elif line.startswith("Unordered"):
            section = "(optional) "
    return "\n".join(lines) if lines else raw.strip()


class ScienceWorld(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self._engine: Optional[Any] = None
        self._state = State()
        self._gold: List[str] = []
        self._next_gold = 0
        self._next_listed = ""
        self._skipped: set = set()
        self._on_gold_path = True
        self._done = True
        self._task = ""
        self._spec: Dict[str, Any] = {}

    @property
    def state(self) -> State:
        return self._state

    def reset(
        self,
        task: Optional[str] = None,
        variation: int = 0,
        simplification: str = "easy",
        seed: Optional[int] = None,
        episode_id: Optional[str] = None,
        **kwargs: Any,
    ) -> LeapObservation:
        if kwargs:
            raise ValueError(
                f"unknown reset argument(s) {sorted(kwargs)}: "
                "ScienceWorld takes task, variation, simplification, seed"
            )
        if not task:
            raise ValueError("reset needs `task` (a ScienceWorld task name, e.g. \"boil\")")
        if self._engine is None:
            self._engine = _engine()
        engine = self._engine
        names = engine.get_task_names()
        name = scienceworld.utils.infer_task(str(task))
        if name not in names:
            raise ValueError(f"unknown ScienceWorld task {task!r}; the tasks are {names}")
        variation = int(variation)
        count = engine.get_max_variations(name)
        if not 0 <= variation < count:
            raise ValueError(f"task {name!r} has variations 0..{count - 1}, not {variation}")
        engine.load(name, variation, simplification or "", generateGoldPath=True)
        text, info = engine.reset()
        self._gold = list(engine.get_gold_action_sequence())
        self._next_gold = 0
        self._skipped: set = set()
        self._on_gold_path = True
        self._done = False
        self._task = engine.get_task_description()
        self._spec = {"task": name, "variation": variation, "simplification": simplification}
        self._state = State(episode_id=episode_id, step_count=0)
        return self._observe(text, info)

    def step(self, action: LeapAction, timeout_s: Optional[float] = None, **kwargs: Any) -> LeapObservation:
        if self._engine is None:
            raise RuntimeError("no episode: reset first")
        if self._done:
            raise RuntimeError("the episode is over: reset to start another")
        command = action.command.strip()
        expected = set()
        if self._next_gold < len(self._gold):
            expected = {_norm(self._gold[self._next_gold]), _norm(self._next_listed)}
        if _norm(command) in expected:
            self._next_gold += 1
        elif _norm(command) not in self._skipped:
            self._on_gold_path = False
        text, _, completed, info = self._engine.step(command)
        self._state.step_count += 1
        score = int(info["score"])
        self._done = bool(completed) or score >= 100 or score < 0
        return self._observe(text, info)

    def _observe(self, text: str, info: Dict[str, Any]) -> LeapObservation:
        score = int(info["score"])
        admissible = sorted(set(info["valid"]))
        listed = set(admissible)
        while (
            self._next_gold < len(self._gold)
            and self._gold[self._next_gold] not in listed
            and DOOR_OPEN.match(_norm(self._gold[self._next_gold]))
        ):
            self._skipped.add(_norm(self._gold[self._next_gold]))
            self._next_gold += 1
        remaining = self._gold[self._next_gold:]
        if remaining:
            # The next gold action as the student can write it.
            self._next_listed = _as_listed(remaining[0], listed)
            remaining = [self._next_listed] + remaining[1:]
        plan = remaining if self._on_gold_path else None
        progress = _progress(self._engine.get_goal_progress())
        facts = {
            "task name": self._spec["task"],
            "variation": str(self._spec["variation"]),
            "gold action sequence": "; ".join(self._gold),
            "next gold action": remaining[0] if remaining else "(none left)",
            "on the gold path": "yes" if self._on_gold_path else "no",
            "goal progress": progress,
        }
        lines = [
            f"Task {self._spec['task']}, variation {self._spec['variation']}.",
            f"Gold action sequence ({len(self._gold)} actions): " + "; ".join(self._gold),
        ]
        if self._on_gold_path:
            lines.append(f"Remaining gold actions ({len(remaining)}): " + "; ".join(remaining))
        else:
            lines.append("The player has left the gold path; ScienceWorld has no re-planner.")
        lines.append("Goal progress:\n" + progress)
        # No reason: the gold path's position is no principle a student could have reached (leap
        # words a plain one), and it stays in the privileged text.
        proposal = None if self._done or not remaining else expert(remaining[0])
        return LeapObservation(
            text=text,
            task=self._task,
            admissible_actions=admissible,
            privileged=privileged("\n".join(lines), facts, plan),
            expert_action=proposal,
            won=score >= 100,
            info={"score": score, "moves": int(info["moves"])},
            reward=max(score, 0) / 100.0,
            done=self._done,
        )

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            _release(engine)


if __name__ == "__main__":
    serve(ScienceWorld, "ScienceWorld as an OpenEnv server in leap's convention")
