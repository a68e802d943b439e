"""The lecture's four hands-on activities: one module each, plus the feedback they share (and activity 4's widget)."""
from .activity_1 import check_activity_1
from .activity_2 import check_activity_2
from .activity_3 import check_activity_3
from .activity_4 import check_activity_4
from .widget import spam_checker

__all__ = ["check_activity_1", "check_activity_2", "check_activity_3", "check_activity_4", "spam_checker"]
