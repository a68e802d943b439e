"""The workbook's figures: plots of data and results, and diagrams of the model and the pipeline."""
