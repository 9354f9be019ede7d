"""Tests of the simulate package."""
