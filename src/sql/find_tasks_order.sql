ORDER BY pick.failed_here, pick.effective, pick.aged_from, pick.instance_id
