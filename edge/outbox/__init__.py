"""Events for the cloud, written in the transaction of the change they describe."""
