"""The closed-loop replay (`voicecart simulate`): days of a prepared dataset asked as voice requests over HTTP
to the real served engine, a simulated shopper answering from what the customer really bought, and the
weekly retrain → gate → canary cycle reading the feedback that came back (docs/loop.md)."""

from voicecart.simulate.replay import ARMS, ReplayConfig, run_replay
from voicecart.simulate.shopper import Ask, react

__all__ = ["ARMS", "Ask", "ReplayConfig", "react", "run_replay"]
