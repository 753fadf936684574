"""``python -m modelyard_dashboard``: run the dashboard with settings from the environment."""

from .app import serve
from .settings import DashboardSettings

if __name__ == "__main__":
    serve(DashboardSettings())
