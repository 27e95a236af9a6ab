"""radfair.studies: the papers' pipelines as compositions of data, training, execution and fairness."""
