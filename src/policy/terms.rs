//! The terms of use every user must accept before searching. The text is versioned; publishing
//! a new version (the annual review) makes every user accept again.

/// The statement a user affirms by accepting, word for word as the policy requires it.
pub const ACKNOWLEDGEMENT: &str = "I have received a copy of the terms and conditions of usage of the \
Central Repository. I agree to comply with the terms and conditions and I understand that any \
violation of the terms and conditions may lead to disciplinary action and/or criminal prosecution.";

/// Version 1 of the terms, published at a node's first start.
pub const TERMS_V1: &str = "ALPR Central Repository: terms and conditions of use (version 1)

1. Use the repository only for official and legitimate law enforcement operations and public
   safety, based on specific and articulable facts of a concern for safety, wrongdoing, a criminal
   investigation, a department-related civil investigation, or pursuant to a court order.
2. Every search must state its purpose, a case or incident number, and the facts that justify it.
   Searches are logged with who made them, when, and why, and the logs are audited.
3. Use only your own login. Never share your password or let anyone use your session.
4. A read is owned by the agency that contributed it. Before taking any enforcement action,
   confirm the read with that source agency.
5. ALPR data is confidential. Do not disclose it except as the law and this policy allow.
   Preserve data that leads to an enforcement action, investigation or prosecution.
6. Data is kept for one year unless it is held for a case. Misuse may end your access and be
   reported to your agency.";
