"""The scenario simulator behind ``sandboxwatch simulate`` and ``up``: a realistic pilot day with one injected
violation per rule kind of the licence, and its ground truth."""

from sandboxwatch.simulator.day_builder import Scenario, SimulationConfig, SimulationTooSmall, Violation
from sandboxwatch.simulator.files import scenario_lines, simulate_to_files, truth_document
from sandboxwatch.simulator.scenario import build_scenario

__all__ = [
    "Scenario",
    "SimulationConfig",
    "SimulationTooSmall",
    "Violation",
    "build_scenario",
    "scenario_lines",
    "simulate_to_files",
    "truth_document",
]
