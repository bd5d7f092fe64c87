"""Lecture 2 (02_dqn) grading fixtures: see submissions.py."""
