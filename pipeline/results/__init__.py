"""From records to claims: the leaderboard, rankings with their uncertainty, findings and the paper's numbers. No
torch."""
