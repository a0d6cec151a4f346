//! The page functions: `__get_free_pages`, `get_zeroed_page`, `free_pages`,
//! `free_page`, `kmem_buddyinfo_write`.
