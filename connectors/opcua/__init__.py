"""OPC UA equipment status (asyncua): status, calibration due date and current batch of an equipment."""
