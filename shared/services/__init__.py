"""Domain logic: functions with keyword-only arguments that raise named errors."""
