"""Flow steps (extract, transform, load, report) shared by the DAGs; the DAG files only wire them."""
