"""The TextWorld side of `cargo bench --bench external`: the same steps as leap takes over the
protocol, called in this process, two ways: the engine alone (`textworld`'s own `env.step`, with
the same information requested), and leap's adapter class (what the server runs per step:
the engine plus the convention's fields). Prints one JSON object of per-step seconds.

    python external_direct.py ADAPTERS_DIR RESET_JSON ROUNDS
"""

import importlib.util
import json
import sys
import time

adapters, reset, rounds = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, adapters)
spec = importlib.util.spec_from_file_location("leap_textworld_adapter", f"{adapters}/textworld.py")
adapter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(adapter)
from leap_openenv import LeapAction  # noqa: E402

ACTIONS = ["look", "inventory"]


def timed(step, reset_fn):
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        done = step(ACTIONS[i % len(ACTIONS)])
        times.append(time.perf_counter() - start)
        if done:
            reset_fn()
    return times


env = adapter.TextWorld()
env.reset(**reset)
in_process = timed(lambda a: env.step(LeapAction(command=a)).done, lambda: env.reset(**reset))

game = dict(reset)
path = adapter.make_game(game.pop("game", "tw-simple"), game.pop("seed", None), game)
tw = adapter.textworld
infos = tw.EnvInfos(
    admissible_commands=True, policy_commands=True, facts=True, objective=True, max_score=True,
    score=True, moves=True, won=True, lost=True, description=True, feedback=True,
)
engine = tw.start(path, request_infos=infos)
engine.reset()
alone = timed(lambda a: engine.step(a)[2], engine.reset)
print(json.dumps({"engine": alone, "adapter": in_process}))
