"""`diffmodel`: the command line for a trained model - colorize and inpaint photos, sample, inspect, export."""
