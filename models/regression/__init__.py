"""Distributed linear and logistic regression as ``pyspark.ml`` estimators.

Switch from MLlib by changing the import::

    from models.regression import LinearRegression, LogisticRegression
"""

from models.regression.linear import LinearRegression, LinearRegressionModel
from models.regression.logistic import LogisticRegression, LogisticRegressionModel

__all__ = ["LinearRegression", "LinearRegressionModel", "LogisticRegression",
           "LogisticRegressionModel"]
