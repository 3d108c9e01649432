"""The API's endpoints, one router per resource: project facts, models, predictions, admin."""
