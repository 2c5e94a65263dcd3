"""Infrastructure for the course: dataset, engines, measuring harness, query recorder, plots, widgets."""

from .config import SIZES, Settings, settings
from .course import Course, setup
from .data import build_dataset, copy_dataset, ensure_dataset
from .db import make_engine
from .errors import CourseError
from .harness import Comparison, Measurement, compare, measure, scaling
from .recorder import Plan, QueryRecorder, explain, record

__all__ = [
    "SIZES",
    "Comparison",
    "Course",
    "CourseError",
    "Measurement",
    "Plan",
    "QueryRecorder",
    "Settings",
    "build_dataset",
    "compare",
    "copy_dataset",
    "ensure_dataset",
    "explain",
    "make_engine",
    "measure",
    "record",
    "scaling",
    "settings",
    "setup",
]
