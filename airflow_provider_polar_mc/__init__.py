"""Apache Airflow provider: migrate PolarDB for MySQL / MySQL into Alibaba Cloud MaxCompute, DTS-style."""

__version__ = "0.1.0"
