"""The simulated tenant: Microsoft Graph (Entra) and Harness over real loopback HTTPS.

The far side of the wire, written from reference/graph-api.md and reference/harness-api.md; it
imports nothing else of scimwatch, so it can disagree with the collectors.
"""

from collectors.simulator.clock import ManualClock, ScaledClock
from collectors.simulator.faults import Fault, FaultController
from collectors.simulator.scenario import SCENARIOS, Planted, Scenario, ScenarioOptions
from collectors.simulator.server import SimulatedTenant, run_simulator

__all__ = [
    "SCENARIOS",
    "Fault",
    "FaultController",
    "ManualClock",
    "Planted",
    "ScaledClock",
    "Scenario",
    "ScenarioOptions",
    "SimulatedTenant",
    "run_simulator",
]
