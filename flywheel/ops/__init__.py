"""Operating the flywheel: local services, Prefect deployments, Ray job submission, round comparison.

Each module imports Prefect, MLflow or Ray lazily inside the functions that talk to them, so the pure parts
(argument checks, table building, run naming) import and test without those packages.
"""
