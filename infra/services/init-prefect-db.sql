-- Prefect's database beside MLflow's in the same Postgres instance.
CREATE DATABASE prefect;
