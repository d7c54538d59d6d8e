"""Airflow DAG: the VPP nightly batch at 22:30 China time, through the `vpp` command line.

Copy this file into the Airflow DAGs folder of a worker that has the project checked out
and installed (``make install``) at VPP_HOME (default /srv/vpp). It uses only Airflow's
public API (``airflow.sdk`` and the standard provider's BashOperator, Airflow 3; pendulum,
which Airflow installs, for the time zone) and calls the CLI, so Airflow needs none of the
project's packages.

``vpp nightly`` exits 0 when every site was forecast, 1 when some sites failed, 3 when
nothing was produced (2: bad options). Any non-zero status fails the task, which Airflow
retries once and then reports through its own alerting (e-mail, callbacks). The issue
time is the run's logical fire time (``data_interval_end``), so a re-run of a past night
in Airflow reproduces that night's forecasts and replaces them in the store.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum  # installed with Airflow; its documented way to a time-zone aware DAG
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

VPP_HOME = "/srv/vpp"

with DAG(
    dag_id="vpp_nightly",
    description="D+1/D+2 forecasts of every site into the forecast store, before the 23:00 bid",
    schedule="30 22 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),  # cron read in China time
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=28),
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
    tags=["vpp", "forecasting"],
) as dag:
    BashOperator(
        task_id="vpp_nightly",
        bash_command=(
            f"cd {VPP_HOME} && OMP_NUM_THREADS=1 .venv/bin/vpp nightly "
            "--data var/portfolio --workers 2 "
            "--issue-time {{ data_interval_end.in_timezone('Asia/Shanghai').isoformat() }}"
        ),
        execution_timeout=timedelta(minutes=27),
    )
