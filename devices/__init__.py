"""Home sensors and actuators over MQTT."""
