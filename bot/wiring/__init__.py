"""Wiring: settings from the environment, the OPTIN_CONFIG file, the services every
part of the app is handed, and logging with phone numbers masked."""
